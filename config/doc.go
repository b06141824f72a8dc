// Package config turns a pgrouter YAML file into typed, defaulted, validated
// structs.
//
//	bytes ──yaml.v3──▶ yaml.Node tree ──${VAR} expansion──▶ known-key check
//	      ──decode──▶ Config ──defaults──▶ validation ──▶ *Config | Errors
//
// Every problem found on the way is collected, not just the first one, and each
// carries the file, the line and the key path ("shards[1].name") so a DBA can
// jump straight to it. The yaml.Node tree is kept only while loading, to map
// key paths back to lines. Nothing here touches the network or global state.
package config
