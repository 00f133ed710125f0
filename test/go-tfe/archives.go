package main

// The configurations the runs plan and apply (terraform_data only: built
// into the engine, so nothing is downloaded), packed as TFE's clients pack
// them, and the state files the state-version checks upload.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

const (
	greeting     = "hello from go-tfe"
	secretOutput = "s3cr3t-go-tfe"
)

// configOne has one resource and outputs of three kinds, one sensitive.
var configOne = map[string]string{
	"main.tf": `
resource "terraform_data" "a" {
  input = "alpha"
}

output "greeting" {
  value = "` + greeting + `"
}

output "answer" {
  value = 42
}

output "secret" {
  value     = "` + secretOutput + `"
  sensitive = true
}
`,
}

// configThree adds two resources to configOne: targets, replacements and
// refresh-only runs are told apart by which of them a plan touches.
var configThree = map[string]string{
	"main.tf": configOne["main.tf"],
	"more.tf": `
resource "terraform_data" "b" {
  input = "bravo"
}

resource "terraform_data" "c" {
  input = "charlie"
}
`,
}

// slowApply applies for minutes, until a cancel: the engine's interrupt
// stops the provisioner, which kills the command (exec: no shell is left
// holding the output open).
var slowApply = map[string]string{
	"main.tf": `
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "echo go-tfe-slow-apply-started; exec sleep 300"
  }
}
`,
}

// tarGz packs files as a gzip-compressed tar, in name order.
func tarGz(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// untarGz reads the regular files of a gzip-compressed tar.
func untarGz(data []byte) (map[string]string, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		header, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar: %w", err)
		}
		if header.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[filepath.Clean(header.Name)] = string(body)
	}
}

// writeDir writes files into a new temporary directory, for
// ConfigurationVersions.Upload, which packs a directory with go-slug.
func writeDir(files map[string]string) (string, error) {
	dir, err := os.MkdirTemp("", "go-tfe-check-")
	if err != nil {
		return "", err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// stateFile is a version 4 state with the given serial and lineage and
// three outputs: a string, a number and a sensitive string.
func stateFile(serial int64, lineage, marker string) []byte {
	state := map[string]any{
		"version":           4,
		"terraform_version": "1.10.10",
		"serial":            serial,
		"lineage":           lineage,
		"outputs": map[string]any{
			"marker":   map[string]any{"value": marker, "type": "string"},
			"count":    map[string]any{"value": 5, "type": "number"},
			"password": map[string]any{"value": "hunter2-" + marker, "type": "string", "sensitive": true},
		},
		"resources":     []any{},
		"check_results": nil,
	}
	data, _ := json.MarshalIndent(state, "", "  ")
	return append(data, '\n')
}

func md5Hex(data []byte) string { return fmt.Sprintf("%x", md5.Sum(data)) }

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

// stateJSON is what the checks read from a downloaded state.
type stateJSON struct {
	Serial    int64  `json:"serial"`
	Lineage   string `json:"lineage"`
	Resources []struct {
		Type      string `json:"type"`
		Name      string `json:"name"`
		Instances []struct {
			Attributes map[string]any `json:"attributes"`
		} `json:"instances"`
	} `json:"resources"`
	Outputs map[string]struct {
		Value any `json:"value"`
	} `json:"outputs"`
}

// resourceID is the id attribute of a resource in the state, or "".
func (s stateJSON) resourceID(kind, name string) string {
	for _, r := range s.Resources {
		if r.Type == kind && r.Name == name && len(r.Instances) > 0 {
			id, _ := r.Instances[0].Attributes["id"].(string)
			return id
		}
	}
	return ""
}
