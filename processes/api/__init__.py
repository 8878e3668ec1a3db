"""REST API of Fleetflow (DESIGN §7, issue 11): /api/v1/ lists, details and actions over the query models."""
