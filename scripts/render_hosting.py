"""Render the Firebase Hosting site of one environment from its Terraform outputs.

    python scripts/render_hosting.py --outputs tf-outputs.json --project PROJECT \
        [--api-key FIREBASE_WEB_API_KEY] [--out dist/hosting]

Writes OUT/firebase.json and OUT/public/ (a copy of web/), so the checked-in files stay
generic and the deploy cannot point at another environment's functions:

- firebase.json: the repository's firebase.json (headers, CSP, caching) with `public`
  set to the copy and the /api rewrites replaced by Terraform's
  `firebase_hosting_rewrites` (this environment's function ids and region), before the
  single-page-app catch-all.
- public/config.json: `streamUrl` set to the chat function's own cloudfunctions.net URL.
  Hosting buffers a rewritten response, so Server-Sent Events through /api/chat would
  arrive in one piece; the client streams from the function directly (CORS allows the
  Hosting origins; the CSP's connect-src allows https://*.cloudfunctions.net) and sends
  every other call through the rewrites. `auth.apiKey` is the Firebase web API key
  (public by design: it names the project, it grants nothing).

Then: `firebase deploy --only hosting --project PROJECT --config OUT/firebase.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def stream_url(rewrites: list[dict[str, Any]], project: str) -> str:
    chat = next(r["function"] for r in rewrites if r["source"] == "/api/chat")
    return f"https://{chat['region']}-{project}.cloudfunctions.net/{chat['functionId']}"


def render(outputs: dict[str, Any], project: str, out: Path, api_key: str | None = None) -> Path:
    rewrites = outputs["firebase_hosting_rewrites"]["value"]
    if not any(r["source"] == "/api/chat" for r in rewrites):
        raise ValueError("firebase_hosting_rewrites has no /api/chat rewrite")
    config = json.loads((REPO / "firebase.json").read_text())
    hosting = config["hosting"]
    public = out / "public"
    if public.exists():
        shutil.rmtree(public)
    shutil.copytree(REPO / hosting["public"], public)
    hosting["public"] = "public"
    others = [r for r in hosting["rewrites"] if not r["source"].startswith("/api")]
    hosting["rewrites"] = [{"source": r["source"], "function": dict(r["function"])} for r in rewrites] + others

    web = json.loads((public / "config.json").read_text())
    web["streamUrl"] = stream_url(rewrites, project)
    if api_key:
        web["auth"]["apiKey"] = api_key
    (public / "config.json").write_text(json.dumps(web, indent=2) + "\n")
    (out / "firebase.json").write_text(json.dumps(config, indent=2) + "\n")
    return out / "firebase.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, required=True, help="`terraform output -json` of the environment")
    parser.add_argument("--project", required=True)
    parser.add_argument("--api-key", help="Firebase web API key (not a secret)")
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "hosting")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = render(json.loads(args.outputs.read_text()), args.project, args.out, args.api_key)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
