#!/usr/bin/env python3
"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1, for
recording the examples' cassettes without a hosted model:

    scripts/scripted-model.py examples/triage/script.json 8765 &
    ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=stand-in \
      hearth run triage --record examples/triage/cassette.jsonl ...

The script is a JSON list of turns, answered in order, one per request:
    [{"text": "...", "tool_calls": [{"name": "read", "input": {"path": "x"}}]}, ...]
Each answer is streamed as Server-Sent Events, the way the real API streams.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

turns = json.load(open(sys.argv[1]))
port = int(sys.argv[2])
served = 0


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global served
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if served >= len(turns):
            body = json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "the script has no more turns"}}).encode()
            self.send_response(400)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        turn = turns[served]
        served += 1
        out = [sse("message_start", {"type": "message_start", "message": {
            "id": f"msg_script_{served:02d}", "type": "message", "role": "assistant", "model": "scripted",
            "content": [], "stop_reason": None, "usage": {"input_tokens": 900 + 40 * served, "output_tokens": 1}}})]
        index = 0
        if turn.get("text"):
            out.append(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                   "delta": {"type": "text_delta", "text": turn["text"]}}))
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        for n, call in enumerate(turn.get("tool_calls", [])):
            out.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": f"toolu_{served:02d}_{n}", "name": call["name"], "input": {}}}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(call["input"])}}))
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        stop = "tool_use" if turn.get("tool_calls") else "end_turn"
        out.append(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                         "usage": {"output_tokens": 60 + 10 * index}}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        body = b"".join(out)
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
