#!/usr/bin/env bash
# A deploy's dry run: everything that can be checked without a cloud project, so a
# maintainer sees a deploy's problems before `terraform apply` / `gcloud builds submit`.
#
#   scripts/deploy_check.sh            (or: make deploy-check)
#
#   1. terraform fmt -check            formatting of terraform/
#   2. settings                        environment.tfvars per environment (naming it), the
#                                      same root .tf files everywhere, no stray
#                                      terraform.tfvars, the provider lock file
#   3. Terraform tests                 tests/deploy (test_terraform_*.py) (python-hcl2:
#                                      references, names, IAM, monitoring, Cloud Build)
#   4. checkov                         on terraform/, accepted findings skipped inline with
#                                      their reason (CHECKOV=path, else checkov on PATH, else
#                                      /tmp/checkov-venv/bin/checkov)
#   5. function zips                   scripts/build_functions.py -> dist/<name>.zip
#   6. training image definition       model_export/Dockerfile (docker build when docker
#                                      is installed, else scripts/check_dockerfile.py)
#   7. Cloud Build steps               cloudbuild.yaml, cloudbuild.migrate.yaml and
#                                      cloudbuild.training.yaml rendered
#                                      with their substitutions; Hosting rendered for dev
#   8. terraform validate              only when the provider is already installed: it
#                                      cannot be downloaded offline, which is why 3 exists
# Exit status: 0 when nothing failed (warnings are printed), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
failed=() warned=()
ok() { printf '  ok    %s\n' "$1"; }
warn() { printf '  WARN  %s\n' "$1"; warned+=("$1"); }
fail() { printf '  FAIL  %s\n' "$1"; failed+=("$1"); }
section() { printf '\n== %s\n' "$1"; }

section "1. terraform fmt -check"
if command -v terraform > /dev/null; then
  if terraform fmt -check -recursive -diff terraform; then ok "terraform fmt"; else fail "terraform fmt (run: terraform fmt -recursive terraform)"; fi
else
  warn "terraform not installed: fmt not checked"
fi

section "2. settings"
for env in terraform/environments/*/; do
  env=$(basename "$env")
  dir=terraform/environments/$env
  if [ -f "$dir/environment.tfvars" ]; then ok "$env: environment.tfvars"; else fail "$env: no environment.tfvars"; fi
  if [ -e "$dir/terraform.tfvars" ]; then
    fail "$env: terraform.tfvars exists: Cloud Build never sees it (git-ignored); move its values to environment.tfvars"
  fi
  if [ -f "$dir/environment.tfvars" ] && ! grep -Eq "^environment *= *\"$env\"" "$dir/environment.tfvars"; then
    fail "$env: environment.tfvars does not say environment = \"$env\" (Cloud Build refuses it)"
  fi
  for code in main.tf variables.tf outputs.tf versions.tf; do
    cmp -s "$dir/$code" terraform/environments/dev/$code || fail "$env: $code differs from dev's (environments differ only in environment.tfvars)"
  done
  if grep -q '"my-project-' "$dir/environment.tfvars" 2> /dev/null; then
    warn "$env: environment.tfvars still names the example project (my-project-$env)"
  fi
  if [ -f "$dir/.terraform.lock.hcl" ]; then
    ok "$env: .terraform.lock.hcl committed"
  else
    warn "$env: no .terraform.lock.hcl: run 'terraform -chdir=$dir providers lock -platform=linux_amd64 -platform=darwin_arm64' where the registry is reachable, and commit it"
  fi
done

section "3. Terraform and deploy tests"
if "$PY" -m pytest -q -p no:cacheprovider tests/deploy; then ok "tests"; else fail "tests/deploy"; fi

section "4. checkov"
CHECKOV=${CHECKOV:-$(command -v checkov || echo /tmp/checkov-venv/bin/checkov)}
if [ -x "$CHECKOV" ]; then
  if "$CHECKOV" -d terraform --framework terraform --compact --quiet --skip-download -o cli; then
    ok "checkov (accepted findings: grep -rn 'checkov:skip' terraform/)"
  else
    fail "checkov"
  fi
else
  warn "checkov not installed (python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov)"
fi

section "5. function zips"
if "$PY" scripts/build_functions.py; then ok "dist/*.zip"; else fail "scripts/build_functions.py"; fi

section "6. training image definition"
dockerfile=model_export/Dockerfile
if [ ! -f "$dockerfile" ]; then
  fail "no $dockerfile: the retrain function's Vertex AI jobs need the training image (TRAINING_IMAGE_URI)"
elif command -v docker > /dev/null && docker info > /dev/null 2>&1; then
  if docker build -q -f "$dockerfile" -t cognitive-core-training:check .; then ok "docker build $dockerfile"; else fail "docker build $dockerfile"; fi
else
  # No daemon (and no hadolint): parse it. Pinned FROM, non-root USER, an entry point
  # that exists and is copied, torch from the CPU wheel index.
  if "$PY" scripts/check_dockerfile.py "$dockerfile"; then
    ok "$dockerfile checked statically"
    warn "docker not available: $dockerfile was checked statically, not built"
  else
    fail "$dockerfile (scripts/check_dockerfile.py)"
  fi
fi

section "7. Cloud Build steps (rendered)"
mkdir -p dist
if "$PY" scripts/render_cloudbuild.py cloudbuild.yaml cloudbuild.migrate.yaml cloudbuild.training.yaml _TF_STATE_BUCKET=my-project-tfstate _IMAGE=us-central1-docker.pkg.dev/my-project/cognitive-core/training > dist/cloudbuild.rendered.txt; then
  ok "dist/cloudbuild.rendered.txt ($(grep -c '^## ' dist/cloudbuild.rendered.txt) steps)"
  grep '^## \|^# runs as' dist/cloudbuild.rendered.txt | sed 's/^/        /'
else
  fail "Cloud Build configs (see the PROBLEM lines above)"
fi
sample=$(mktemp)
"$PY" - "$sample" << 'PYEOF'
import json, sys
rewrites = [{"source": s, "function": {"functionId": f"cc-dev-{n}", "region": "us-central1"}}
            for n in ("chat", "grading", "prediction", "feedback") for s in (f"/api/{n}", f"/api/{n}/**")]
json.dump({"firebase_hosting_rewrites": {"value": rewrites}}, open(sys.argv[1], "w"))
PYEOF
if "$PY" scripts/render_hosting.py --outputs "$sample" --project my-project-dev --out dist/hosting-check > /dev/null; then
  ok "Hosting render (dist/hosting-check/firebase.json)"
else
  fail "scripts/render_hosting.py"
fi
rm -f "$sample"

section "8. terraform validate"
validated=false
for env in dev prod; do
  dir=terraform/environments/$env
  if [ -d "$dir/.terraform/providers" ]; then
    if terraform -chdir="$dir" validate -no-color; then ok "$env: terraform validate"; else fail "$env: terraform validate"; fi
    validated=true
  fi
done
$validated || warn "terraform validate skipped: it needs the google provider, which this machine cannot download (terraform init); the static tests in step 3 stand in for it"

printf '\n== summary: %d failed, %d warnings\n' "${#failed[@]}" "${#warned[@]}"
for f in "${failed[@]}"; do printf '  FAIL  %s\n' "$f"; done
[ ${#failed[@]} -eq 0 ]
