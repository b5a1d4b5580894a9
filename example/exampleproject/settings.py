"""Settings of the demo project. Every value can be overridden from the environment
so tests and benchmarks can point it at a scratch database."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = os.environ.get(
    "EXAMPLE_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver"
).split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_devcommands",
    "pages",
]
# Benchmarks compare against Django's own commands on the same project.
if os.environ.get("EXAMPLE_WITHOUT_DEVCOMMANDS") == "1":
    INSTALLED_APPS.remove("django_devcommands")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
WSGI_APPLICATION = "exampleproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("EXAMPLE_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DEVCOMMANDS = {
    "SHELL_INTERFACES": ["bpython", "ipython", "ptpython", "python"],
    # Unset: the local Solr that `manage.py solr --start` runs.
    "SOLR_URL": os.environ.get("EXAMPLE_SOLR_URL") or None,
    "SOLR_MODE": os.environ.get("EXAMPLE_SOLR_MODE", "standalone"),
    "SOLR_COLLECTION": os.environ.get("EXAMPLE_SOLR_COLLECTION", "pages"),
    "SOLR_CONFIGSET": os.environ.get("EXAMPLE_SOLR_CONFIGSET", "pages"),
    "SOLR_LOCAL_DIR": os.environ.get("EXAMPLE_SOLR_LOCAL_DIR") or None,
    # A Solr install (the directory holding bin/solr) for --start/--stop.
    "SOLR_INSTALL": os.environ.get("EXAMPLE_SOLR_INSTALL") or None,
    "SOLR_SHARDS": int(os.environ.get("EXAMPLE_SOLR_SHARDS", "1")),
    "SOLR_SIGNALS": os.environ.get("EXAMPLE_SOLR_SIGNALS", "0").lower() in {"1", "true", "yes"},
    "SOLR_UPDATE_LOG": os.environ.get("EXAMPLE_SOLR_UPDATE_LOG", "1").lower() not in {"0", "false"},
    # "user:password" for a Solr that requires Basic authentication.
    "SOLR_AUTH": (
        tuple(os.environ["EXAMPLE_SOLR_AUTH"].split(":", 1))
        if os.environ.get("EXAMPLE_SOLR_AUTH")
        else None
    ),
}
