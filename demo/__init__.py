"""The demo fleet: hardware flows (bpmn/), a seeded server inventory, and pyzeebe workers that run the
flows through the gateway proxy with realistic trouble. Started by `manage.py run_stack --demo`."""
