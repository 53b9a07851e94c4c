from django.db import migrations

# TRUNCATE fires no row trigger: a statement trigger refuses it too. The app role has no TRUNCATE privilege
# at all (controlpanel/core/dbroles.py); this stops the owner by accident. A superuser passes (it could drop
# the trigger anyway), so the test suite's flush between tests keeps working.
FORWARD = """
CREATE OR REPLACE FUNCTION core_auditevent_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'the audit log is append-only: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER core_auditevent_no_truncate
  BEFORE TRUNCATE ON core_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION core_auditevent_refuse_truncate();
ALTER TABLE core_auditevent ENABLE ALWAYS TRIGGER core_auditevent_append_only;
ALTER TABLE core_auditevent ENABLE ALWAYS TRIGGER core_auditevent_no_truncate;
"""
BACKWARD = """
DROP TRIGGER IF EXISTS core_auditevent_no_truncate ON core_auditevent;
DROP FUNCTION IF EXISTS core_auditevent_refuse_truncate();
ALTER TABLE core_auditevent ENABLE TRIGGER core_auditevent_append_only;
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0002_audit_append_only")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
