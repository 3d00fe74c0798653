"""The approvals queue in the admin and the dashboard's decisions: Django's test client against
the admin's list, actions and resolve page, and the dashboard's resolve endpoint."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cosmos.models import Interrupt, InterruptStatus, Run, RunStatus
from cosmos.services import interrupts as interrupt_services
from cosmos.services import runs as run_services
from interfaces.console import services
from tests.factories import make_agent, make_run
from tests.support.interrupts import approval_agent, the_interrupt
from tests.support.runs import wait_for_run

CHANGELIST = "admin:cosmos_interrupt_changelist"


def waiting(kind: str = "approval", request: dict | None = None, **fields) -> Interrupt:
    """A run paused on one interrupt, written directly (no worker: nothing resumes it)."""
    run = make_run(target=make_agent().id, status=RunStatus.INTERRUPTED, started_at=timezone.now())
    if request is None:
        request = (
            {"toolCallId": "call-1", "tool": "calculator", "arguments": {"expression": "6*7"}}
            if kind == "approval"
            else {"toolCallId": "call-1", "question": "Which city?"}
        )
    run.checkpoint = {"interrupts": []}
    run.save(update_fields=["checkpoint"])
    interrupt = Interrupt.objects.create(run=run, root_run=run, kind=kind, request=request, **fields)
    Run.objects.filter(id=run.id).update(checkpoint={"interrupts": [str(interrupt.id)]})
    return interrupt


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def reviewer_client(django_user_model, *, staff: bool = True, may_change: bool = True) -> Client:
    user = django_user_model.objects.create_user(username="reviewer", password="pw-12345678", is_staff=staff)
    codenames = ["view_interrupt", "view_run"] + (["change_interrupt"] if may_change else [])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="cosmos", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


# --- the admin's list and actions


@pytest.mark.django_db
def test_the_queue_lists_pending_first_then_oldest_with_its_columns(staff_client):
    done = waiting(status=InterruptStatus.APPROVED, resolved_by="alice")
    first = waiting()
    second = waiting("question")
    response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [r.id for r in rows] == [first.id, second.id, done.id]
    html = response.content.decode()
    assert "Approve calling calculator with {&quot;expression&quot;: &quot;6*7&quot;}?" in html
    assert "Which city?" in html
    assert reverse("admin:cosmos_run_change", args=[first.run_id]) in html
    assert reverse("admin:cosmos_interrupt_resolve", args=[first.id]) in html
    assert reverse("admin:cosmos_interrupt_resolve", args=[done.id]) not in html, "only pending rows resolve"
    filtered = staff_client.get(reverse(CHANGELIST), {"status__exact": "pending", "kind__exact": "question"})
    assert [r.id for r in filtered.context["cl"].result_list] == [second.id]


@pytest.mark.django_db
def test_rows_are_read_only(staff_client):
    interrupt = waiting()
    assert staff_client.get(reverse("admin:cosmos_interrupt_add")).status_code == 403
    page = staff_client.get(reverse("admin:cosmos_interrupt_change", args=[interrupt.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id]) in html
    staff_client.post(reverse("admin:cosmos_interrupt_change", args=[interrupt.id]), {"status": "approved"})
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING
    assert staff_client.get(reverse("admin:cosmos_interrupt_delete", args=[interrupt.id])).status_code == 403


@pytest.mark.django_db
def test_approve_and_reject_actions_report_what_was_already_resolved(staff_client):
    pending, question = waiting(), waiting("question")
    done = waiting(status=InterruptStatus.REJECTED, decision="reject", resolved_by="bob")
    selected = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [pending.pk, question.pk, done.pk]}
    response = staff_client.post(reverse(CHANGELIST), selected)
    assert response.status_code == 302
    said = messages_of(response)
    assert "1 interrupt(s) approved." in said
    (warning,) = [m for m in said if m.startswith("Not resolved")]
    assert str(done.id)[:8] in warning and "already rejected" in warning
    assert str(question.id)[:8] in warning and "answer" in warning, "a question cannot be approved"
    pending.refresh_from_db()
    assert (pending.status, pending.decision, pending.resolved_by) == ("approved", "approve", "staff")
    assert Run.objects.get(id=pending.run_id).status == RunStatus.QUEUED

    response = staff_client.post(
        reverse(CHANGELIST), {"action": "reject_selected", ACTION_CHECKBOX_NAME: [question.pk]}
    )
    assert "1 interrupt(s) rejected." in messages_of(response)
    question.refresh_from_db()
    assert question.status == InterruptStatus.REJECTED


@pytest.mark.django_db
def test_actions_and_resolving_need_the_change_permission(django_user_model):
    interrupt = waiting()
    viewer = reviewer_client(django_user_model, may_change=False)
    listing = viewer.get(reverse(CHANGELIST))
    assert listing.status_code == 200 and b"approve_selected" not in listing.content
    response = viewer.post(reverse(CHANGELIST), {"action": "approve_selected", ACTION_CHECKBOX_NAME: [interrupt.pk]})
    assert response.status_code in (200, 302)
    assert viewer.get(reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])).status_code == 403
    assert (
        viewer.post(reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id]), {"decision": "approve"}).status_code
        == 403
    )
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING


@pytest.mark.django_db
def test_non_staff_is_sent_to_the_login(django_user_model):
    interrupt = waiting()
    plain = reviewer_client(django_user_model, staff=False)
    for url in (reverse(CHANGELIST), reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])):
        response = plain.post(url, {"decision": "approve"})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING


# --- the admin's resolve page


@pytest.mark.django_db
def test_edit_and_approve_from_the_resolve_page(staff_client):
    interrupt = waiting()
    url = reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])
    page = staff_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "calculator" in html and 'value="edit"' in html and 'name="answer"' not in html
    response = staff_client.post(url, {"decision": "edit", "arguments": '{"expression": "2*3"}', "message": "smaller"})
    assert response.status_code == 302 and response["Location"] == reverse(CHANGELIST)
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.APPROVED and interrupt.decision == "edit"
    assert interrupt.response == {"arguments": {"expression": "2*3"}, "message": "smaller"}


@pytest.mark.django_db
def test_bad_json_and_a_refused_decision_show_on_the_form(staff_client):
    interrupt = waiting()
    url = reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])
    bad_json = staff_client.post(url, {"decision": "edit", "arguments": "{not json"})
    assert bad_json.status_code == 400 and "arguments" in bad_json.context["form"].errors
    refused = staff_client.post(url, {"decision": "edit", "arguments": "[1, 2]"})
    assert refused.status_code == 400
    assert "edit needs arguments" in refused.content.decode()
    unknown = staff_client.post(url, {"decision": "answer"})
    assert unknown.status_code == 400 and "decision" in unknown.context["form"].errors
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING


@pytest.mark.django_db
def test_a_question_is_answered_and_its_schema_checked(staff_client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    interrupt = waiting("question", {"toolCallId": "c", "question": "Where?", "schema": schema})
    url = reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])
    wrong = staff_client.post(url, {"decision": "answer", "answer": '{"town": "Paris"}'})
    assert wrong.status_code == 400 and "does not match the question&#x27;s schema" in wrong.content.decode()
    empty = staff_client.post(url, {"decision": "answer", "answer": ""})
    assert empty.status_code == 400 and "answer needs an answer" in empty.content.decode()
    right = staff_client.post(url, {"decision": "answer", "answer": '{"city": "Paris"}'})
    assert right.status_code == 302
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.ANSWERED and interrupt.response["answer"] == {"city": "Paris"}


@pytest.mark.django_db
def test_already_resolved_and_unknown_interrupts_give_a_message_not_an_error(staff_client):
    interrupt = waiting()
    url = reverse("admin:cosmos_interrupt_resolve", args=[interrupt.id])
    interrupt_services.resolve(interrupt.id, "reject", resolved_by="someone-else")
    response = staff_client.post(url, {"decision": "approve"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:cosmos_interrupt_change", args=[interrupt.id])
    assert f"Interrupt {interrupt.id} is already rejected." in messages_of(response)
    missing = staff_client.get(reverse("admin:cosmos_interrupt_resolve", args=["not-a-uuid"]))
    assert missing.status_code == 302 and "No interrupt with id" in " ".join(messages_of(missing))


@pytest.mark.django_db
def test_the_run_page_shows_its_interrupts_read_only(staff_client):
    interrupt = waiting("question")
    response = staff_client.get(reverse("admin:cosmos_run_change", args=[interrupt.run_id]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Which city?" in html and "question" in html
    (formset,) = [f for f in response.context["inline_admin_formsets"] if f.opts.model is Interrupt]
    assert not formset.has_change_permission and not formset.has_add_permission
    add = staff_client.get(reverse("admin:cosmos_run_add"))
    assert add.status_code == 200 and not add.context["inline_admin_formsets"]


# --- the dashboard


def resolve_url(interrupt_id) -> str:
    return reverse("dashboard:resolve_interrupt", args=[interrupt_id])


def post_json(client: Client, url: str, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **extra)


@pytest.mark.django_db
def test_rows_of_waiting_runs_carry_their_pending_interrupts():
    interrupt = waiting()
    other = make_run(target=make_agent().id, status=RunStatus.RUNNING)
    rows = {row["id"]: row for row in services.recent_runs()}
    (shown,) = rows[str(interrupt.run_id)]["interrupts"]
    assert shown == interrupt_services.describe(interrupt)
    assert rows[str(other.id)]["interrupts"] == []
    assert services.run_rows([str(interrupt.run_id)])[0]["interrupts"][0]["id"] == str(interrupt.id)


@pytest.mark.django_db
def test_the_dashboard_approves_and_answers(staff_client):
    approval, question = waiting(), waiting("question")
    response = post_json(staff_client, resolve_url(approval.id), {"decision": "approve", "message": "ok"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["interrupt"]["status"] == "approved" and body["interrupt"]["resolvedBy"] == "staff"
    assert body["run"]["id"] == str(approval.run_id) and body["run"]["status"] == "queued"
    assert body["run"]["interrupts"] == []
    answered = post_json(staff_client, resolve_url(question.id), {"decision": "answer", "answer": "Paris"})
    assert answered.status_code == 200 and answered.json()["interrupt"]["response"]["answer"] == "Paris"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_request"),
        ([1, 2], 400, "invalid_decision"),
        ({}, 400, "invalid_decision"),
        ({"decision": "maybe"}, 400, "invalid_decision"),
        ({"decision": "edit", "arguments": "2*3"}, 400, "invalid_decision"),
        ({"decision": "reject", "message": 5}, 400, "invalid_decision"),
    ],
)
def test_the_dashboard_refuses_bad_input(staff_client, body, status, code):
    interrupt = waiting()
    response = post_json(staff_client, resolve_url(interrupt.id), body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING


@pytest.mark.django_db
def test_the_dashboard_says_what_was_resolved_first_or_never_was(staff_client):
    interrupt = waiting()
    interrupt_services.resolve(interrupt.id, "approve", resolved_by="alice")
    again = post_json(staff_client, resolve_url(interrupt.id), {"decision": "reject"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_resolved"
    missing = post_json(staff_client, resolve_url("9d3c2b9e-0000-4000-8000-000000000000"), {"decision": "reject"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = staff_client.get(resolve_url(interrupt.id))
    assert wrong_method.status_code == 405 and wrong_method["Allow"] == "POST"


@pytest.mark.django_db
def test_the_dashboard_endpoint_is_for_staff_who_may_change_interrupts(django_user_model):
    interrupt = waiting()
    anonymous = post_json(Client(), resolve_url(interrupt.id), {"decision": "approve"})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    plain = post_json(
        reviewer_client(django_user_model, staff=False), resolve_url(interrupt.id), {"decision": "approve"}
    )
    assert plain.status_code == 403 and plain.json()["error"]["code"] == "permission_denied"
    interrupt.refresh_from_db()
    assert interrupt.status == InterruptStatus.PENDING


@pytest.mark.django_db
def test_a_staff_user_without_the_permission_is_denied_too(django_user_model):
    interrupt = waiting()
    viewer = reviewer_client(django_user_model, may_change=False)
    assert post_json(viewer, resolve_url(interrupt.id), {"decision": "approve"}).status_code == 403
    page = viewer.get(reverse("dashboard:index"))
    assert 'data-may-resolve=""' in page.content.decode(), "the page disables its buttons"


@pytest.mark.django_db
def test_the_dashboard_endpoint_checks_csrf(staff_user):
    interrupt = waiting()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    refused = post_json(client, resolve_url(interrupt.id), {"decision": "approve"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    page = client.get(reverse("dashboard:index"))
    token = page.context["csrf_token"]
    assert f'data-csrf="{token}"' in page.content.decode()
    accepted = post_json(client, resolve_url(interrupt.id), {"decision": "approve"}, HTTP_X_CSRFTOKEN=str(token))
    assert accepted.status_code == 200


# --- end to end, with the worker: approve in the admin, the run finishes


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("embedded_worker")
def test_approving_in_the_admin_lets_the_run_finish(staff_client):
    run, _ = run_services.start_run("agent", approval_agent().id, "what is 6*7?")
    wait_for_run(run.id, statuses=["interrupted"])
    interrupt = the_interrupt(run.id)
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "approve_selected", ACTION_CHECKBOX_NAME: [interrupt.pk]}
    )
    assert "1 interrupt(s) approved." in messages_of(response)
    run = wait_for_run(run.id)
    assert run.status == RunStatus.SUCCEEDED and run.output == "The result is 42."
