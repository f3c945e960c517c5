"""Talks to Switchyard with the official OpenAI Python client, as an existing application
would: lists the models, completes a chat, streams one, continues a conversation.

Usage: client.py BASE_URL API_KEY   (prints one JSON object with what it saw)
"""

import json
import sys

from openai import OpenAI

base_url, api_key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)

models = [m.id for m in client.models.list()]
retrieved = client.models.retrieve("travel").id

raw = client.chat.completions.with_raw_response.create(
    model="switchyard",
    messages=[{"role": "user", "content": "I was charged twice on my invoice"}],
)
completion = raw.parse()
conversation = raw.headers.get("x-switchyard-conversation-id")
answered_by = raw.headers.get("x-switchyard-agent")

pieces = []
stream = client.chat.completions.create(
    model="travel",
    stream=True,
    messages=[{"role": "user", "content": "and book me a flight"}],
    extra_headers={"X-Switchyard-Conversation-Id": conversation},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)

try:
    client.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "hi"}])
    error = None
except Exception as e:  # the client's NotFoundError
    error = {"type": type(e).__name__, "status": getattr(e, "status_code", None)}

try:
    client.chat.completions.create(model="switchyard", n=2, messages=[{"role": "user", "content": "hi"}])
    refused = None
except Exception as e:  # the client's BadRequestError, with the field it is about
    refused = {"type": type(e).__name__, "status": getattr(e, "status_code", None),
               "param": getattr(e, "param", None)}

print(json.dumps({
    "models": models,
    "retrieved": retrieved,
    "answered_by": answered_by,
    "refused": refused,
    "answer": completion.choices[0].message.content,
    "finish_reason": completion.choices[0].finish_reason,
    "conversation": conversation,
    "streamed": pieces,
    "error": error,
}))
