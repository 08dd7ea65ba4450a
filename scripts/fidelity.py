"""Drives the simulator with Intercom's official Python SDK (python-intercom 5.x) and checks
the raw bodies against Intercom's OpenAPI 2.16 schemas (Fixtures/openapi-2.16-schemas.json, the
schemas cut unchanged from the 2.16 file). Usage: fidelity.py BASE_URL TOKEN SCHEMAS"""
import sys
import time

import httpx
import json
from openapi_schema_validator import OAS30Validator

from intercom import (
    CreateContactRequestWithEmail,
    CreateOrUpdateCompanyRequest,
    CreateOrUpdateTagRequest,
    CreateMessageRequest_Email,
    CreateMessageRequest_Inapp,
    Intercom,
    SingleFilterSearchRequest,
    StartingAfterPaging,
)
from intercom.contacts.types.contact import Contact
from intercom.contacts.types.contacts_find_response import ContactsFindResponse
from intercom.core.api_error import ApiError
from intercom.messages.types.message import Message
from intercom.types.contact_list import ContactList
from intercom.types.tag_list import TagList

base_url, token, spec_path = sys.argv[1], sys.argv[2], sys.argv[3]
checks = 0


def check(condition, what):
    global checks
    if not condition:
        sys.exit(f"FAIL: {what}")
    checks += 1
    print(f"ok: {what}")


spec = json.load(open(spec_path))
# The 2.16 OpenAPI file types contact.avatar as an object; the SDK (whose models must parse
# every response) and older docs have a URL string. The simulator sends the string, so the
# schema is widened to accept either; that is the only change made to Intercom's schemas.
avatar = spec["components"]["schemas"]["contact"]["properties"]["avatar"]
spec["components"]["schemas"]["contact"]["properties"]["avatar"] = {"anyOf": [{"type": "string", "format": "uri"}, avatar]}


def validate(instance, schema_name, what):
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": spec["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(instance), key=str)
    check(not errors, f"{what} matches the OpenAPI 2.16 schema {schema_name}" + (f": {errors[0].message}" if errors else ""))


client = Intercom(token=token, base_url=base_url)
raw = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                               "Intercom-Version": "2.16"})

me = client.admins.identify()
check(me is not None and me.id and me.app is not None and me.app.timezone, "get me: admin id and app timezone")

email = f"fidelity-{int(time.time() * 1000)}@example.com"
created = client.contacts.create(request=CreateContactRequestWithEmail(email=email, name="Zoë O'Brien"))
check(created.id and created.email == email and created.role == "user", "create a contact")

try:
    client.contacts.create(request=CreateContactRequestWithEmail(email=email))
    check(False, "a second create with the same email is refused")
except ApiError as error:
    body = error.body if isinstance(error.body, dict) else {}
    message = (body.get("errors") or [{}])[0].get("message", "")
    check(error.status_code == 409 and f"id={created.id}" in message,
          f"the same email again gives the SDK's 409 naming the existing id ({message})")

found = client.contacts.find(contact_id=created.id)
check(found.id == created.id and found.name == "Zoë O'Brien", "get the contact")
contact_body = raw.get(f"/contacts/{created.id}").json()
ContactsFindResponse.model_validate(contact_body)
validate(contact_body, "contact", "GET /contacts/{id}")

first_page = raw.get("/contacts", params={"per_page": 150}).json()
total = first_page["total_count"]
check(total >= 1000, f"the workspace holds {total} contacts (>= 1000)")
ContactList.model_validate(first_page)
validate(first_page, "contact_list", "GET /contacts")
ids = [contact.id for contact in client.contacts.list(per_page=150)]
check(len(ids) == total and len(set(ids)) == total, f"the SDK pager walks all {total} contacts once ({len(ids)})")

since = int(time.time()) - 400 * 86400
# python-intercom 5.0.1's search pager never sends the next cursor (its get_next repeats the
# first request), so it would loop forever against Intercom too; walk the pages by hand.
found_ids, cursor, pages = [], None, 0
while True:
    page = client.contacts.search(
        query=SingleFilterSearchRequest(field="updated_at", operator=">", value=since),
        pagination=StartingAfterPaging(per_page=150, starting_after=cursor)).iter_pages().__next__()
    found_ids += [contact.id for contact in page.items]
    pages += 1
    following = page.response.pages.next if page.response.pages else None
    cursor = following.starting_after if following else None
    if not cursor or pages > 100:
        break
expected = page.response.total_count
check(created.id in found_ids and len(found_ids) == expected == len(set(found_ids)),
      f"search by updated_at pages through all {expected} matches ({len(found_ids)} in {pages} pages)")
search_body = raw.post("/contacts/search", json={"query": {"field": "updated_at", "operator": ">", "value": since},
                                                 "pagination": {"per_page": 20}}).json()
ContactList.model_validate(search_body)
validate(search_body, "contact_list", "POST /contacts/search")

sender = {"type": "admin", "id": me.id}
inapp = client.messages.create(request=CreateMessageRequest_Inapp(
    body="Hello from the fidelity check", from_=sender, to={"type": "user", "id": created.id}))
check(inapp.id and inapp.message_type == "inapp", "send an in-app message")
mail = client.messages.create(request=CreateMessageRequest_Email(
    subject="Hi", body="Hello by email", template="plain", from_=sender, to={"type": "user", "id": created.id}))
check(mail.id and mail.message_type == "email" and mail.subject == "Hi", "send an email message")
message_body = raw.post("/messages", json={"message_type": "inapp", "body": "raw", "from": sender,
                                           "to": {"type": "user", "id": created.id}}).json()
Message.model_validate(message_body)
validate(message_body, "message", "POST /messages")

tag = client.tags.create(request=CreateOrUpdateTagRequest(name="VIP"))
check(tag.id and tag.name == "VIP", "create a tag")
check(client.tags.find(tag_id=tag.id).name == "VIP", "find the tag")
check(tag.id in [listed.id for listed in client.tags.list().data], "list the workspace's tags")
tags_body = raw.get("/tags").json()
TagList.model_validate(tags_body)
validate(tags_body, "tag_list", "GET /tags")
validate(raw.get(f"/tags/{tag.id}").json(), "tag_basic", "GET /tags/{id}")
applied = client.tags.tag_contact(contact_id=created.id, tag_id=tag.id)
check(applied.id == tag.id and applied.applied_at, "tag the contact")
tagged = raw.get(f"/contacts/{created.id}").json()
validate(tagged, "contact", "GET /contacts/{id} of a tagged contact")
check([item["id"] for item in tagged["tags"]["data"]] == [tag.id] and tagged["tags"]["total_count"] == 1,
      "the tagged contact's body lists the tag")
check([listed.id for listed in client.contacts.list_attached_tags(contact_id=created.id).data] == [tag.id],
      "list the contact's tags")
validate(raw.get(f"/contacts/{created.id}/tags").json(), "tag_list", "GET /contacts/{id}/tags")
check(client.tags.untag_contact(contact_id=created.id, tag_id=tag.id).id == tag.id, "untag the contact")
check(raw.get(f"/contacts/{created.id}").json()["tags"]["total_count"] == 0, "the untagged contact's body lists none")
client.tags.delete(tag_id=tag.id)
try:
    client.tags.find(tag_id=tag.id)
    check(False, "a deleted tag is not found")
except ApiError as error:
    check(error.status_code == 404, "a deleted tag gives the SDK a 404")

segments = client.segments.list(include_count=True).segments
check(segments and all(segment.id and segment.name and segment.count is not None for segment in segments),
      f"list the workspace's {len(segments)} segments with their counts")
validate(raw.get("/segments", params={"include_count": "true"}).json(), "segment_list", "GET /segments")
check(client.contacts.list_attached_segments(contact_id=created.id).type == "list", "list the contact's segments")
validate(raw.get(f"/contacts/{created.id}/segments").json(), "contact_segments", "GET /contacts/{id}/segments")

company = client.companies.create_or_update(
    request=CreateOrUpdateCompanyRequest(company_id="fidelity-1", name="Fidelity, Inc.", plan="Pro", size=12))
check(company.id and company.company_id == "fidelity-1" and company.name == "Fidelity, Inc.", "create a company")
validate(raw.get(f"/companies/{company.id}").json(), "company", "GET /companies/{id}")
check(client.companies.find(company_id=company.id).plan.name == "Pro", "find the company")
attached = client.companies.attach_contact(contact_id=created.id, company_id=company.id)
check(attached.id == company.id and attached.user_count == 1, "attach the contact to the company")
with_company = raw.get(f"/contacts/{created.id}").json()
validate(with_company, "contact", "GET /contacts/{id} of a contact with a company")
check([item["id"] for item in with_company["companies"]["data"]] == [company.id], "the contact's body lists its company")
check([listed.id for listed in client.contacts.list_attached_companies(contact_id=created.id)] == [company.id],
      "list the contact's companies")
validate(raw.get(f"/contacts/{created.id}/companies").json(), "contact_attached_companies", "GET /contacts/{id}/companies")
check(company.id in [listed.id for listed in client.companies.list(per_page=50)], "the company list pages to the company")
validate(raw.post("/companies/list", params={"per_page": 5}).json(), "company_list", "POST /companies/list")
validate(raw.get("/companies/scroll").json(), "company_scroll", "GET /companies/scroll")
check(client.companies.detach_contact(contact_id=created.id, company_id=company.id).id == company.id,
      "detach the contact from the company")

archived = client.contacts.archive(contact_id=created.id)
check(archived.archived is True and archived.id == created.id, "archive the contact")
try:
    client.contacts.find(contact_id=created.id)
    check(False, "an archived contact is not served by GET")
except ApiError as error:  # the SDK's find maps no 404 to NotFoundError
    check(error.status_code == 404 and error.body["errors"][0]["code"] == "not_found",
          "GET of the archived contact gives the SDK a 404 not_found")

print(f"fidelity: {checks} checks passed")
