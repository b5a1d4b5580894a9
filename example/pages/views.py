from django.shortcuts import get_object_or_404, render

from pages.models import Page

PAGE_SIZE = 20


def page_list(request):
    pages = Page.objects.only("title", "slug", "published", "body")[:PAGE_SIZE]
    return render(request, "pages/list.html", {"pages": pages, "count": Page.objects.count()})


def page_detail(request, slug):
    page = get_object_or_404(Page, slug=slug)
    return render(request, "pages/detail.html", {"page": page})


def search(request):
    """Full-text search over the Solr index of pages (``manage.py solr --reindex`` first)."""
    from django_devcommands.solr.errors import SolrError
    from django_devcommands.solr.search import search as solr_search

    query = request.GET.get("q", "").strip()
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    results, pages, error = None, [], None
    if query:
        try:
            results = solr_search(query, models=[Page], page=page, per_page=PAGE_SIZE)
            pages = results.objects()
        except SolrError as exc:
            error = str(exc)
    return render(
        request,
        "pages/search.html",
        {
            "query": query,
            "results": results,
            "pages": pages,
            "error": error,
        },
        status=503 if error else 200,
    )
