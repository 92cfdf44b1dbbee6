"""``manage.py switchboard_sync [app_label.model ...]``: sends one ``synced`` event per registered model
(default: every registered model that is not private), which seeds or replaces the gateway's model view
(``[[realms.models]]``). Run it after each gateway start: a view answers only once seeded."""

from django.core.management.base import BaseCommand, CommandError

from ... import registry


class Command(BaseCommand):
    help = "Seeds the gateway's model views: one synced event with every row of each registered model."

    def add_arguments(self, parser):
        parser.add_argument("models", nargs="*", metavar="app_label.model",
                            help="model names (default: every registered model that is not private)")

    def handle(self, *args, models, **options):
        known = {reg.name: reg for reg in registry.registered()}
        if models:
            unknown = [m for m in models if m.lower() not in known]
            if unknown:
                raise CommandError(f"not registered with switchboard: {', '.join(unknown)}; "
                                   f"registered: {', '.join(sorted(known)) or 'none'}")
            chosen = [known[m.lower()] for m in models]
        else:
            chosen = [reg for reg in known.values() if reg.private is None]
        failed = []
        for reg in chosen:
            try:
                receipt = registry.sync(reg.model)
            except Exception as error:  # EmitError, or ImproperlyConfigured for a private model
                self.stderr.write(f"{reg.name}: not synced: {error}")
                failed.append(reg.name)
                continue
            count = reg.model._default_manager.count()
            self.stdout.write(f"{reg.name}: synced {count} row(s) on {reg.topic}"
                              + (f" (publication {receipt.publication})" if receipt.publication else ""))
        if failed:
            raise CommandError(f"{len(failed)} model(s) not synced: {', '.join(failed)}")
