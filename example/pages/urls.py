from django.urls import path

from pages import views

app_name = "pages"
urlpatterns = [
    path("", views.page_list, name="list"),
    path("search/", views.search, name="search"),
    path("pages/<slug:slug>/", views.page_detail, name="detail"),
]
