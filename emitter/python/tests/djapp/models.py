"""Models of the Django unit tests (test_pyemit_django.py); created with migrate --run-syncdb."""

import uuid

from django.conf import settings
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    when = models.DateTimeField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    uid = models.UUIDField(default=uuid.uuid4)
    internal = models.CharField(max_length=50, blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)


class Secret(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.CharField(max_length=50)


class Plain(models.Model):
    label = models.CharField(max_length=50)


class CheapItem(Item):
    class Meta:
        proxy = True
