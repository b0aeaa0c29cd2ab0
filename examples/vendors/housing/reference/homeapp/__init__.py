"""HomeApp: usine's reference housing client (diagnostician, renovation adviser and contractor features).

A small but real application: OpenID Connect with Authlib and joserfc, DPE documents built with lxml, HTTP
with httpx trusting only the anchors it is given. It shares no code with usine: it is what a vendor writes.
"""

__version__ = "1.0.0"
