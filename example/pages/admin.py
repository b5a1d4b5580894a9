from django.contrib import admin

from pages.models import Page


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "published"]
    prepopulated_fields = {"slug": ["title"]}
    search_fields = ["title", "body"]
