"""The example project plus the views runfcgi's tests look through (tests/fcgi_urls.py)."""

from exampleproject.settings import *  # noqa: F403

ROOT_URLCONF = "tests.fcgi_urls"
WSGI_APPLICATION = "tests.fcgi_urls.application"
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
