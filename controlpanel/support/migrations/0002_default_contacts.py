"""The runbook's "Contacts and Escalation" as editable defaults (admin → Contacts, Escalation levels)."""

from django.db import migrations

CONTACTS = [
    ("database", "Backend Architect", "Database issues", "", False),
    ("workers", "Cloudflare Workers Specialist", "Workers issues", "", False),
    ("frontend", "Full-Stack Developer", "Frontend issues", "", False),
    ("infrastructure", "DevOps/Platform Team", "Infrastructure issues", "", False),
    ("database", "Database Administrator", "Database emergency", "[Database Administrator Contact]", True),
    ("infrastructure", "Platform Team", "Infrastructure emergency", "[Platform Team Contact]", True),
]
LEVELS = [
    (1, "Development team member", "First responder for the failing area."),
    (2, "Technical lead + Database administrator", "When level 1 cannot resolve it within the window."),
    (3, "CTO + External database consultant", "Business critical; also [Technical Leadership Contact]."),
]


def seed(apps, schema_editor):
    Contact = apps.get_model("support", "Contact")
    EscalationLevel = apps.get_model("support", "EscalationLevel")
    for area, name, role, how, emergency in CONTACTS:
        Contact.objects.get_or_create(area=area, name=name, defaults={"role": role, "how_to_reach": how,
                                                                      "emergency": emergency})
    for level, who, description in LEVELS:
        EscalationLevel.objects.get_or_create(level=level, defaults={"who": who, "description": description})


def unseed(apps, schema_editor):
    apps.get_model("support", "Contact").objects.filter(name__in=[c[1] for c in CONTACTS]).delete()
    apps.get_model("support", "EscalationLevel").objects.filter(level__in=[lv[0] for lv in LEVELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("support", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
