from django.urls import path

from shop import views
from switchboard_emitter.django.views import ticket

urlpatterns = [
    path("", views.orders, name="orders"),
    path("login/<str:username>/", views.login_as),  # test project only: log in without a password
    path("switchboard/ticket", ticket),
]
