"""Load N generated pages: the data set of the demo, the benchmarks and reindexing."""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from pages.models import Page

WORDS = [
    "django",
    "server",
    "shell",
    "index",
    "search",
    "solr",
    "cheroot",
    "worker",
    "request",
    "response",
    "template",
    "query",
    "model",
    "view",
    "socket",
    "signal",
    "reload",
    "daemon",
    "process",
    "thread",
    "python",
    "debugger",
    "page",
    "title",
    "body",
    "slug",
    "cache",
    "static",
    "media",
    "admin",
    "field",
    "schema",
    "batch",
    "commit",
]


def make_body(rng: random.Random, paragraphs: int = 4) -> str:
    return "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 80))).capitalize() + "."
        for _ in range(paragraphs)
    )


class Command(BaseCommand):
    help = "Create generated pages (deterministic for a given --seed)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200, help="How many pages (default 200).")
        parser.add_argument("--clear", action="store_true", help="Delete existing pages first.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, count, clear, seed, batch_size, **options):
        rng = random.Random(seed)
        now = timezone.now()
        with transaction.atomic():
            if clear:
                Page.objects.all().delete()
            start = Page.objects.count()
            batch = []
            for i in range(start, start + count):
                title = " ".join(rng.choice(WORDS) for _ in range(4)).title()
                batch.append(
                    Page(
                        title=title,
                        slug=f"page-{i}",
                        body=make_body(rng),
                        published=now - timedelta(minutes=i),
                    )
                )
                if len(batch) >= batch_size:
                    Page.objects.bulk_create(batch)
                    batch = []
            Page.objects.bulk_create(batch)
        if options["verbosity"]:
            self.stdout.write(f"Loaded {count} pages ({start + count} in all).")
