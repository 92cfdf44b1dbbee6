from django.apps import AppConfig


class DjappConfig(AppConfig):
    name = "djapp"
    default_auto_field = "django.db.models.AutoField"
