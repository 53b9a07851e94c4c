from django.db import migrations, models


def snapshot_environment(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.select_related("target").filter(environment=""):
        Run.objects.filter(pk=run.pk).update(environment=run.target.environment)


class Migration(migrations.Migration):
    dependencies = [("runs", "0004_step_paused"), ("targets", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="run",
            name="environment",
            field=models.CharField(choices=[("demo", "Demo"), ("staging", "Staging"), ("production", "Production")],
                                   default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.RunPython(snapshot_environment, migrations.RunPython.noop),
    ]
