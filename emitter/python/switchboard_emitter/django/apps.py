from django.apps import AppConfig


class SwitchboardConfig(AppConfig):
    """``INSTALLED_APPS += ["switchboard_emitter.django"]``: the ``switchboard`` template tag library and
    the ``switchboard_ticket`` / ``switchboard_sync`` management commands."""

    name = "switchboard_emitter.django"
    label = "switchboard"
    verbose_name = "Switchboard"
