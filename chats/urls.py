from django.urls import path

from chats import attachment_views, streaming, tree_views, views

urlpatterns = [
    path("", views.chat_new, name="home"),
    path("attachments", attachment_views.attachment_upload_view, name="attachment_upload"),
    path(
        "attachments/<uuid:attachment_id>",
        attachment_views.attachment_download_view,
        name="attachment_download",
    ),
    path("c/list", views.chat_list, name="chat_list"),
    path("c/send", views.message_send_view, name="chat_send_new"),
    path("c/<uuid:chat_id>/", views.chat_detail, name="chat_detail"),
    path("c/<uuid:chat_id>/send", views.message_send_view, name="chat_send"),
    path("c/<uuid:chat_id>/title", views.chat_title_view, name="chat_title"),
    path("c/<uuid:chat_id>/settings", views.chat_settings_view, name="chat_settings"),
    path("c/<uuid:chat_id>/rename", views.chat_rename_view, name="chat_rename"),
    path("c/<uuid:chat_id>/delete", views.chat_delete_view, name="chat_delete"),
    path("c/<uuid:chat_id>/m/<uuid:message_id>/", views.message_detail, name="message_detail"),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/stream",
        streaming.message_stream,
        name="message_stream",
    ),
    path("c/<uuid:chat_id>/m/<uuid:message_id>/stop", views.message_stop_view, name="message_stop"),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/retry", views.message_retry_view, name="message_retry"
    ),
    path("c/<uuid:chat_id>/compare", tree_views.chat_compare, name="chat_compare"),
    path("c/<uuid:chat_id>/map", tree_views.chat_map_view, name="chat_map"),
    path("c/<uuid:chat_id>/messages", views.chat_messages, name="chat_messages"),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/select",
        tree_views.message_select_view,
        name="message_select",
    ),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/edit",
        tree_views.message_edit_view,
        name="message_edit",
    ),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/regenerate",
        tree_views.message_regenerate_view,
        name="message_regenerate",
    ),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/delete",
        tree_views.message_delete_view,
        name="message_delete",
    ),
    path(
        "c/<uuid:chat_id>/m/<uuid:message_id>/fork",
        tree_views.message_fork_view,
        name="message_fork",
    ),
]
