from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("hello/<str:name>/", views.hello),
    path("form/", views.form),
    path("upload/", views.upload),
    path("body/", views.body),
    path("go/", views.go),
    path("cookie/set/", views.cookie_set),
    path("cookie/get/", views.cookie_get),
    path("session/<str:value>/", views.session_set),
    path("session/", views.session_get),
    path("missing/", views.missing),
    path("crash/", views.crash),
    path("stream/", views.stream),
]
