"""The same fields as example/pages/search_indexes.py, declared for django-haystack.

``text`` is left empty: the Solr schema both tools index into fills it from title and
body with copyFields, so Solr does the same work for either tool.
"""

from haystack import indexes
from pages.models import Page


class PageIndex(indexes.SearchIndex, indexes.Indexable):
    text = indexes.CharField(document=True)
    title = indexes.CharField(model_attr="title")
    body = indexes.CharField(model_attr="body")
    slug = indexes.CharField(model_attr="slug")
    published = indexes.DateTimeField(model_attr="published")
    words = indexes.IntegerField()

    def get_model(self):
        return Page

    def get_updated_field(self):
        return "updated"

    def prepare_text(self, obj):
        return ""

    def prepare_words(self, obj):
        return len(obj.body.split())
