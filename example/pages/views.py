from django.shortcuts import get_object_or_404, render

from pages.models import Page

PAGE_SIZE = 20


def page_list(request):
    pages = Page.objects.only("title", "slug", "published", "body")[:PAGE_SIZE]
    return render(request, "pages/list.html", {"pages": pages, "count": Page.objects.count()})


def page_detail(request, slug):
    page = get_object_or_404(Page, slug=slug)
    return render(request, "pages/detail.html", {"page": page})
