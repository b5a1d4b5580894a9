"""The search index of the demo's pages (found by ``manage.py solr``, like admin.py)."""

from django_devcommands.solr import indexes
from pages.models import Page


@indexes.register
class PageIndex(indexes.SearchIndex):
    model = Page
    updated_field = "updated"

    title = indexes.TextField()
    # Searched through the catch-all ``text`` field (the search page's default field):
    # indexing it on its own as well would make Solr analyze every body twice.
    body = indexes.TextField(stored=False, indexed=False)
    slug = indexes.StringField()
    published = indexes.DateField()
    words = indexes.IntField(copy_to_text=False)

    def prepare_words(self, page: Page) -> int:
        return len(page.body.split())
