"""The archive's pages under /archive/, one URL per action."""

from django.urls import path

from archive import views

urlpatterns = [
    path("archive/", views.archive_index, name="archive_index"),
    path("archive/new", views.entry_new, name="archive_new"),
    path("archive/<uuid:entry_id>/", views.entry_detail, name="archive_entry"),
    path("archive/<uuid:entry_id>/edit", views.entry_edit, name="archive_edit"),
    path("archive/<uuid:entry_id>/delete", views.entry_delete_view, name="archive_delete"),
    path("archive/<uuid:entry_id>/links", views.link_add_view, name="archive_link_add"),
    path(
        "archive/<uuid:entry_id>/links/<int:link_id>/delete",
        views.link_remove_view,
        name="archive_link_remove",
    ),
    path("archive/picker", views.pin_picker, name="archive_picker"),
    path("archive/picker/<uuid:entry_id>/stage", views.pin_stage, name="archive_stage"),
    path("archive/chats/<uuid:chat_id>/pins", views.chat_pins, name="archive_chat_pins"),
    path("archive/chats/<uuid:chat_id>/pins/add", views.chat_pin_add_view, name="archive_pin_add"),
    path(
        "archive/chats/<uuid:chat_id>/pins/<uuid:entry_id>/delete",
        views.chat_pin_remove_view,
        name="archive_pin_remove",
    ),
]
