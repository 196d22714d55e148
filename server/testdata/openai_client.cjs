// openai_client.cjs drives /v1/chat/completions with the official openai
// npm client, non-streaming (max_completion_tokens) and streaming
// (stream_options.include_usage), lists the models, and prints one JSON
// line.
// Usage: node openai_client.cjs <node_modules dir> <base URL> <api key> <image data URI>
const path = require("path");
const [modules, baseURL, apiKey, image] = process.argv.slice(2);
const OpenAI = require(path.join(modules, "openai"));

async function main() {
  const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey, maxRetries: 0 });
  const messages = [{ role: "user", content: [
    { type: "text", text: "Describe this image." },
    { type: "image_url", image_url: { url: image } },
  ] }];
  const full = await client.chat.completions.create({ model: "medgr2", messages, max_tokens: 32 });
  const short = await client.chat.completions.create({ model: "medgr2", messages, max_completion_tokens: 3 });
  const stream = await client.chat.completions.create({ model: "medgr2", messages, max_tokens: 32, stream: true,
    stream_options: { include_usage: true } });
  let streamed = "";
  let chunks = 0;
  let finish = null;
  let streamUsage = null;
  for await (const chunk of stream) {
    chunks++;
    streamed += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
    streamUsage = chunk.usage ?? streamUsage;
  }
  const models = [];
  for await (const m of client.models.list()) {
    models.push(m.id);
  }
  let badKey = 0;
  try {
    await new OpenAI({ baseURL: baseURL + "/v1", apiKey: "wrong", maxRetries: 0 }).chat.completions.create({ model: "m", messages });
  } catch (e) {
    badKey = e.status;
  }
  console.log(JSON.stringify({ text: full.choices[0].message.content, usage: full.usage, streamed, chunks, finish, badKey,
    short: { tokens: short.usage.completion_tokens, finish: short.choices[0].finish_reason }, streamUsage, models }));
}

main().catch((e) => { console.error(e); process.exit(1); });
