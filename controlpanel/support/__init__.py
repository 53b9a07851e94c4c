"""The support staff's read-only lookup of a person's or an organization's memberships."""
