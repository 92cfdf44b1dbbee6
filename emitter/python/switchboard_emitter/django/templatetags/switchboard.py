"""``{% load switchboard %}``:

* ``{% switchboard_connect %}`` renders ``<script type="application/json" id="switchboard-config">`` with
  the gateway URL, the realm, the ``/switchboard.js`` URL and, for a logged-in ``request.user``, the authid
  and a fresh ticket (``{% switchboard_connect "other-id" %}`` for another element id).
* ``{% switchboard_live queryset as live %}`` sets ``live`` to ``{"model", "prefix", "rows", "after"}``
  (reading the gateway's last publication before evaluating the queryset); render it with
  ``{{ live|json_script:"orders" }}``.
"""

from django import template
from django.utils.html import json_script

from .. import connect_config, live

register = template.Library()


@register.simple_tag(takes_context=True)
def switchboard_connect(context, element_id="switchboard-config"):
    request = context.get("request")
    if request is None:
        raise template.TemplateSyntaxError(
            "{% switchboard_connect %} needs the request in the context: render with a RequestContext "
            "(django.template.context_processors.request, or render(request, ...))")
    return json_script(connect_config(request), element_id)


@register.simple_tag
def switchboard_live(queryset):
    return live(queryset)
