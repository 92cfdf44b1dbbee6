from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from switchboard_emitter import django as switchboard

        from .models import Note, Order

        switchboard.register(Order, fields=["status", "total", "owner", "created"])
        switchboard.register(Note, fields=["text"], private=lambda note: [note.owner.get_username()])
