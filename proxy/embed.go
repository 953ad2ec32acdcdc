package proxy

import "embed"

// nginxConfs holds proxy/nginx/*.conf: the configurations NginxConfig.ConfFile runs, and
// the very files docker/compose.yaml mounts into its nginx services.
//
//go:embed nginx/*.conf
var nginxConfs embed.FS

// NginxConf returns the nginx configuration proxy/nginx/NAME (e.g. "buffered.conf").
func NginxConf(name string) ([]byte, error) {
	return nginxConfs.ReadFile("nginx/" + name)
}
