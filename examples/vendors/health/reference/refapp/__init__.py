"""RefApp: a small but real client of the national services, and usine's reference vendor.

It really calls the sandbox over HTTP (httpx), logs practitioners in with OpenID Connect (Authlib
client, joserfc for ID token validation), builds CDA R2 documents with lxml. ``refapp.defects``
switches on exactly one realistic defect, for the defective vendors in ../defective/.
"""

__version__ = "1.0.0"
