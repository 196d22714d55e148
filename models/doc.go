// Package models defines model bundles (Hugging Face model folders with
// ONNX graphs, plus medgr2's model.json) and the project's own
// Qwen2-VL-style architecture, built with package graph.
//
// # Bundle layout
//
// A bundle is a Hugging Face model folder in the layout onnx-community
// publishes for Qwen2-VL and transformers.js and Optimum read:
// config.json (model_type qwen2_vl, text and vision config, token ids,
// rope_scaling.mrope_section), generation_config.json,
// preprocessor_config.json, tokenizer.json, tokenizer_config.json (with the
// chat template), and onnx/vision_encoder.onnx, onnx/embed_tokens.onnx and
// onnx/decoder_model_merged.onnx, each with its weights in
// <graph>.onnx_data beside it (ONNX external data, as browsers load it).
// transformers.js runs such a folder as Qwen2VLForConditionalGeneration
// with no added file (TestTransformersJSParity). Beside them,
// onnx/model.safetensors holds every weight once (the training checkpoint)
// and model.json is medgr2's metadata (Manifest: name, version, roles among
// vqa/generator/reward, ArchConfig, special token ids, prompt format,
// image-processor settings and file names). Export writes a new bundle;
// Rewrite writes one again with trained weights, so graphs, .onnx_data and
// checkpoint always agree.
//
// # Graph signatures
//
//   - vision_encoder: pixel_values [N, 1176], grid_thw [images, 3] →
//     image_features [N/4, hidden]
//   - embed_tokens: input_ids [batch, seq] → inputs_embeds [batch, seq, hidden]
//   - decoder_model_merged: inputs_embeds, attention_mask [batch, past+seq],
//     position_ids [3, batch, seq], past_key_values.{i}.key|value
//     [batch, kv_heads, past, head_dim] → logits [batch, seq, vocab] (scores
//     [batch] for the reward role, read at each row's last real token) and
//     present.{i}.key|value.
//
// # Dtype variants
//
// A folder may ship each graph again as <graph>_fp16.onnx, _q4.onnx,
// _q4f16.onnx, … (transformers.js's names); LoadDevice picks one (DType).
// Float ports may be float16 (fp16, q4f16): the runner then feeds and
// reads float16, keeping inputs_embeds and the KV cache float16 between
// decode steps and widening logits to float32 for sampling (Names.Half).
// ExportVariants writes fp16 (norm reductions, softmax and RoPE tables in
// float32), q4 and q4f16 (com.microsoft MatMulNBits, QuantizeQ4) from a
// bundle's float32 graphs.
//
// # Running a bundle
//
// Open loads a bundle for inference: Load's checks, the tokenizer, ONNX
// Runtime and the three sessions. A VLM is safe for concurrent use (each
// call keeps its own KV cache). Prompts in a batch are left-padded
// (attention_mask 0 on the left) so all rows decode in lockstep; RopeIndex
// gives Qwen2-VL's mRoPE position_ids [3, batch, seq]; vision features
// replace the embeddings at <|image_pad|> tokens, in order. Prefill returns
// the first logits and a Decoder (a generate.Session) that feeds present.*
// back as past_key_values.* without copying; Generate runs
// runtime/generate on top (sampling, stop tokens and strings, per-token
// log-probs).
//
// # Layers
//
// The runner is layered one way; each file calls only the layers below it:
//
//   - features.go: ProcessImage (decoded image → patches) and ImageFeatures
//     (the vision encoder, once per image, so a batch's cost grows
//     linearly with its images). Features are explicit values: every
//     *With call takes them, computed once, and Features.Select reuses them
//     for a subset or a re-prompt of the batch.
//
//   - prefill.go: batches (left padding, mRoPE positions), embeddings with
//     the features spliced in, LastLogits and ScorePrompts.
//
//   - decode.go and stream.go: the KV-cache Decoder, Generate and
//     GenerateStream (tokens to a callback as they are sampled).
//
//   - prompt.go, then the roles: VLM.Answer (vqa.go) is the one function
//     that answers a VQA question, for the server, the CLI, eval (through
//     Answerer) and the pipeline: fast (option-letter probabilities from
//     one forward pass, prompt ending in "<answer>") and reason (generate
//     "<think>…</think><answer>X</answer>", then score the letters after
//     the reasoning), both with calibrated probabilities; Score (reward
//     bundles); GenerateSamples (generator; ParseSample reads
//     SampleFormat).
//
//     v, err := models.Open(ctx, dir, models.VLMOptions{Device: runtime.CPU})
//     defer v.Close()
//     px, err := v.ProcessImage(img)
//     ans, err := v.Answer(ctx, []models.VQARequest{{Pixels: px,
//     Question: "Which modality?", Options: []string{"CT", "MRI"}}}, models.ReasonOptions{})
//     fmt.Println(ans[0].Letter, ans[0].Prob)
//
// # Usage
//
//	b, err := models.Export(ctx, dir, models.DefaultConfig(0),
//		models.ExportOptions{Tokenizer: "tokenizer.json", Seed: 1})
//	…
//	b, err = models.Load(ctx, dir) // validates manifest, files, ONNX signatures, weights
//	sess := runtime.Open(b.DecoderPath(), …)
//
// Load errors are *BundleError values wrapping ErrMissingFile, ErrBadManifest,
// ErrBadConfig, ErrBadONNX, ErrSignature or ErrBadWeights.
package models
