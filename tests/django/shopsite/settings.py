"""A minimal Django project publishing its models through Switchboard. Env (the e2e test sets them):
SWITCHBOARD_DJANGO_DB (SQLite file, default db.sqlite3 here), SWITCHBOARD_DJANGO_CONFIG (switchboard.toml,
default the one here), SWITCHBOARD_DJANGO_GATEWAY_URL (default from the config's [gateway] listen)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "switchboard-e2e-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "shopsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "switchboard_emitter.django",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth"]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("SWITCHBOARD_DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
}}

SWITCHBOARD = {
    "CONFIG": os.environ.get("SWITCHBOARD_DJANGO_CONFIG", str(BASE_DIR / "switchboard.toml")),
    "REALM": "shop",
    "ROLES": ["member"],
    "TICKET_TTL": 3600,
}
if os.environ.get("SWITCHBOARD_DJANGO_GATEWAY_URL"):
    SWITCHBOARD["GATEWAY_URL"] = os.environ["SWITCHBOARD_DJANGO_GATEWAY_URL"]

LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"switchboard_emitter": {"handlers": ["console"], "level": "WARNING"}},
}
