"""nst.web: nst-web, a local web page to stylize in the browser with a live preview. The server needs the `web`
extra (starlette, uvicorn, python-multipart); jobs.py, examples.py and progress.py need only the runtime."""
