package main

import (
	"os"
	"path/filepath"
)

// defaultBundles is the folder the commands take model bundles from when
// none is named: its vqa, generator and reward subfolders, those that
// exist. $MEDGR2_MODELS overrides it (the container image sets it).
const defaultBundles = "models/default"

// envModels names the environment variable that overrides defaultBundles.
const envModels = "MEDGR2_MODELS"

// defaultBundle returns the default bundle folder of role ("vqa",
// "generator" or "reward") when it holds a manifest, else "".
func defaultBundle(role string) string {
	root := os.Getenv(envModels)
	if root == "" {
		root = defaultBundles
	}
	dir := filepath.Join(root, role)
	if _, err := os.Stat(filepath.Join(dir, "model.json")); err != nil {
		return ""
	}
	return dir
}
