package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/medgr2/medgr2/tokenizer"
)

// runTokenize implements `medgr2 tokenize`: encode a JSON array of strings
// read from stdin into a JSON array of id arrays, or with --decode the
// reverse; `medgr2 tokenize train` trains a byte-level BPE tokenizer.
func runTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "train" {
		return runTokenizeTrain(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("tokenizer", "", "Hugging Face tokenizer.json (required)")
	decode := fs.Bool("decode", false, "decode: read a JSON array of id arrays, print a JSON array of strings")
	skip := fs.Bool("skip-special", false, "with --decode, leave special tokens out")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: medgr2 tokenize --tokenizer FILE [--decode [--skip-special]] < input.json")
		fmt.Fprintln(stderr, "       medgr2 tokenize train --out FILE [--vocab N] [--min-frequency N] INPUT...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError("tokenize: --tokenizer is required and takes no arguments")
	}
	tok, err := tokenizer.Load(*path)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if *decode {
		return decodeJSON(tok, in, stdout, *skip)
	}
	return encodeJSON(tok, in, stdout)
}

// encodeJSON reads a JSON array of strings and writes their ids.
func encodeJSON(tok *tokenizer.Tokenizer, in io.Reader, out io.Writer) error {
	var texts []string
	if err := json.NewDecoder(in).Decode(&texts); err != nil {
		return usageError(fmt.Sprintf("tokenize: stdin must be a JSON array of strings: %v", err))
	}
	res := make([][]int, len(texts))
	for i, s := range texts {
		ids, err := tok.Encode(s)
		if err != nil {
			return fmt.Errorf("tokenize: text %d: %w", i, err)
		}
		res[i] = ids
	}
	return json.NewEncoder(out).Encode(res)
}

// decodeJSON reads a JSON array of id arrays and writes their texts.
func decodeJSON(tok *tokenizer.Tokenizer, in io.Reader, out io.Writer, skip bool) error {
	var ids [][]int
	if err := json.NewDecoder(in).Decode(&ids); err != nil {
		return usageError(fmt.Sprintf("tokenize --decode: stdin must be a JSON array of id arrays: %v", err))
	}
	res := make([]string, len(ids))
	for i, seq := range ids {
		s, err := tok.Decode(seq, skip)
		if err != nil {
			return fmt.Errorf("tokenize --decode: sequence %d: %w", i, err)
		}
		res[i] = s
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}

// runTokenizeTrain implements `medgr2 tokenize train`.
func runTokenizeTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "where to write the trained tokenizer.json (required)")
	vocab := fs.Int("vocab", tokenizer.DefaultTrainVocabSize, "total vocabulary size, added tokens included")
	minFreq := fs.Int("min-frequency", 2, "stop when the best pair occurs fewer times")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: medgr2 tokenize train --out FILE [--vocab N] [--min-frequency N] INPUT...")
		fmt.Fprintln(stderr, "INPUT: OmniMedVQA item arrays (.json), collection.json files, folders of them, or text files (one text per line)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return usageError("tokenize train: --out and at least one INPUT are required")
	}
	texts, err := tokenizer.ReadCorpus(ctx, fs.Args()...)
	if err != nil {
		return err
	}
	tok, err := tokenizer.TrainBPE(ctx, texts, tokenizer.TrainOptions{VocabSize: *vocab, MinFrequency: *minFreq})
	if err != nil {
		if errors.Is(err, tokenizer.ErrTrain) {
			return usageError(err.Error())
		}
		return err
	}
	if err := tok.Save(*out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "trained %d texts → %d ids, wrote %s\n", len(texts), tok.VocabSize(), *out)
	return err
}
