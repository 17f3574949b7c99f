"""The browser client: `GET /client.js` (an ES module, no build step, no dependency) and its
types, `GET /client.d.ts`, for web pages that schedule and follow jobs (README, From a web page).
"""

from jobcast.webclient.routes import router

__all__ = ["router"]
