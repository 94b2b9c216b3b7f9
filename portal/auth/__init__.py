"""Sign-in with Entra ID: the authorization-code flow, its callback and sign-out."""

from portal.auth.routes import bp

__all__ = ["bp"]
