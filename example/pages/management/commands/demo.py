"""One command to see the demo: migrate, load pages if there are none, serve."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from pages.models import Page


class Command(BaseCommand):
    help = "Set up the SQLite database with sample pages and serve the site with runcpserver."

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=200)
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="Set up only.")

    def handle(self, pages, port, no_serve, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not Page.objects.exists():
            call_command("load_pages", count=pages, verbosity=options["verbosity"])
        if no_serve:
            return
        self.stdout.write(f"Serving the demo on http://127.0.0.1:{port}/ (Ctrl-C to stop).")
        call_command("runcpserver", "host=127.0.0.1", f"port={port}", "autoreload=false")
