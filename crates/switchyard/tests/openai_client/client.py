"""Talks to Switchyard with the official OpenAI Python client, as an existing application
would: lists the models, completes a chat, streams one, continues a conversation by its
header and by resending the thread, sends a history, makes many one-message calls, and
reads the usage and the errors.

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

try:
    client.models.retrieve("no-such-model")
    missing_model = None
except Exception as e:  # the client's NotFoundError, its body in OpenAI's shape
    missing_model = {"type": type(e).__name__, "status": getattr(e, "status_code", None),
                     "code": getattr(e, "code", None)}

# The history the client sends is what the agent gets (the recorder agent answers with it).
recorded = client.chat.completions.create(
    model="recorder",
    messages=[
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ],
).choices[0].message.content

# A chat front end resends the growing thread: one conversation.
thread = [{"role": "user", "content": "I was charged twice on my invoice"}]
first = client.chat.completions.with_raw_response.create(model="switchyard", messages=thread)
thread.append({"role": "assistant", "content": first.parse().choices[0].message.content})
thread.append({"role": "user", "content": "and the invoice number is 42"})
second = client.chat.completions.with_raw_response.create(model="switchyard", messages=thread)
resent = [first.headers.get("x-switchyard-conversation-id"),
          second.headers.get("x-switchyard-conversation-id")]

# A script's one-message calls, many more than the user's conversation limit.
calls = 0
for i in range(12):
    client.chat.completions.create(model="switchyard", messages=[{"role": "user", "content": f"question number {i}"}])
    calls += 1

# The usage, plain and streamed (`stream_options.include_usage`: a last chunk with it).
plain_usage = completion.usage.model_dump() if completion.usage else None
streamed_usage = None
for chunk in client.chat.completions.create(
    model="switchyard",
    stream=True,
    stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "I was charged twice on my invoice"}],
):
    if chunk.usage is not None:
        streamed_usage = {"usage": chunk.usage.model_dump(), "choices": len(chunk.choices)}

print(json.dumps({
    "missing_model": missing_model,
    "recorded": recorded,
    "resent": resent,
    "calls": calls,
    "plain_usage": plain_usage,
    "streamed_usage": streamed_usage,
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
