"""``path("switchboard/ticket", switchboard_emitter.django.views.ticket)``: a fresh ticket for the logged-in
user as JSON ``{"authid", "ticket"}`` (403 when anonymous), for pages that stay open longer than
``TICKET_TTL``: ``connect({..., authid, ticket: () => fetch(url).then(r => r.json()).then(t => t.ticket)})``."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import ticket_for


@never_cache
@require_GET
def ticket(request):
    answer = ticket_for(getattr(request, "user", None))
    if answer is None:
        return JsonResponse({"error": "not logged in"}, status=403)
    return JsonResponse(answer)
