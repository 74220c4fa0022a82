#!/usr/bin/env bash
# The main job on embedded defaults: start the service (API + in-process worker), ingest the
# sample documents, ask a question and print the cited answer. Leaves the service running.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
RAG=.venv/bin/rag
URL=${RAG_API_URL:-http://127.0.0.1:8000}
QUESTION=${QUESTION:-"How quickly must a severity 1 incident be acknowledged?"}
mkdir -p .rag

if curl -sf "$URL/healthz" >/dev/null 2>&1; then
  echo "==> using the service already running at $URL"
else
  echo "==> starting the service (log: .rag/serve.log)"
  nohup "$RAG" serve >.rag/serve.log 2>&1 &
  echo $! >.rag/serve.pid
fi

printf "==> waiting for the service to be ready"
for i in $(seq 240); do
  if curl -sf "$URL/readyz" >/dev/null 2>&1; then echo " ok"; break; fi
  if [ -f .rag/serve.pid ] && ! kill -0 "$(cat .rag/serve.pid)" 2>/dev/null; then
    echo; echo "the service exited; last lines of .rag/serve.log:"; tail -20 .rag/serve.log; exit 1
  fi
  [ "$i" = 240 ] && { echo; curl -s "$URL/readyz"; echo; exit 1; }
  printf "."; sleep 1
done

# The API wants a key: the demo makes an admin key for itself once (kept in .rag/demo-key).
if [ -z "${RAG_API_KEY:-}" ]; then
  if [ ! -s .rag/demo-key ]; then
    echo "==> creating an API key for the demo (.rag/demo-key)"
    (umask 077; "$RAG" keys create --name "demo-$(date +%s)" --scopes admin --quiet >.rag/demo-key)
  fi
  RAG_API_KEY=$(cat .rag/demo-key)
fi
export RAG_API_KEY

echo "==> ingesting samples/docs into collection 'demo'"
"$RAG" ingest samples/docs --collection demo
echo "==> asking: $QUESTION"
"$RAG" query "$QUESTION" --collection demo

cat <<TXT

The service is running at $URL (API docs: $URL/docs; stop it with: make stop).
Web UI: $URL/ui (sign in with the key in .rag/demo-key).
Every /v1 call needs an API key; the demo's admin key is in .rag/demo-key:
  export RAG_API_KEY=\$(cat .rag/demo-key)
Try next:
  .venv/bin/rag query "What language is the fleet controller written in?" -c demo
  .venv/bin/rag retrieve "travel booking rules" -c demo
  .venv/bin/rag ingest ~/my-documents -c mine && .venv/bin/rag query "..." -c mine
  .venv/bin/rag keys create --name reader --scopes query --collections demo
  curl -s $URL/v1/query -H "Authorization: Bearer \$RAG_API_KEY" -H 'content-type: application/json' \\
       -d '{"collection": "demo", "question": "Where is the new warehouse?"}'
TXT
