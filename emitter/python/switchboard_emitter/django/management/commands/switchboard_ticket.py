"""``manage.py switchboard_ticket --authid alice --role member --ttl 3600``: prints a connection ticket, as
``switchboard ticket`` does (the ticket on the last line of stdout)."""

from django.core.management.base import BaseCommand, CommandError

from ....errors import EmitError
from ... import conf


class Command(BaseCommand):
    help = "Prints a WAMP connection ticket for an authid, signed with the secret of SWITCHBOARD['CONFIG']."

    def add_arguments(self, parser):
        parser.add_argument("--authid", required=True, help="the session's authid (e.g. a username)")
        parser.add_argument("--role", action="append", dest="roles", metavar="ROLE",
                            help="a role (repeatable; the first is the session's authrole); "
                                 "default SWITCHBOARD['ROLES']")
        parser.add_argument("--ttl", type=int, help="seconds the ticket is valid; default SWITCHBOARD['TICKET_TTL']")

    def handle(self, *args, authid, roles, ttl, **options):
        opts = conf.options()
        try:
            ticket = conf.get_emitter().ticket(authid, roles or opts.roles, ttl or opts.ticket_ttl)
        except (EmitError, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(ticket)
