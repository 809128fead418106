"""The server-rendered web interface: pages in Finnish, Swedish and English on top of the engine.

Map: `sessions` (server-side sessions, the middleware), `csrf` (form tokens), `auth` (passwords, the bad-attempt
limiter), `i18n` (the `web` catalogue in `api/locale`), `render` (Jinja2, Markdown), `routing` (the signed-in user,
errors as pages), `forms`, `queries` + `views` (read models), `delegation` (substitutes), `mail` (links,
reminders now), `admin_read` + `board` (administration and dashboard read models), `case_forms` (nomination and
survey forms), `routes/` (the pages), `templates/`, `static/`. `mount.mount_web` wires it into the app.
"""
