// Package docker holds the container topology of sseharness (Dockerfile, compose file,
// Kubernetes manifests, nginx configurations) and embeds the nginx configurations, so
// that the proxy-buffering scenario starts a local nginx from the very files compose uses.
package docker

import "embed"

// nginxConfs holds docker/nginx/*.conf.
//
//go:embed nginx/*.conf
var nginxConfs embed.FS

// NginxConf returns the nginx configuration docker/nginx/NAME (e.g. "buffered.conf").
func NginxConf(name string) ([]byte, error) {
	return nginxConfs.ReadFile("nginx/" + name)
}
