from django.contrib.auth import get_user_model, login
from django.shortcuts import get_object_or_404, redirect, render

from .models import Note, Order


def orders(request):
    # Querysets, not lists: {% switchboard_live %} reads the gateway's position before evaluating them.
    context = {"orders": Order.objects.order_by("pk")}
    if request.user.is_authenticated:
        context["notes"] = Note.objects.filter(owner=request.user).order_by("pk")
    return render(request, "shop/orders.html", context)


def login_as(request, username):
    """Test project only: logs the browser in as `username` without a password."""
    login(request, get_object_or_404(get_user_model(), username=username))
    return redirect("orders")
