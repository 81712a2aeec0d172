// An xDS control plane on go-control-plane (server/v3 + the cache/v3 snapshot cache): the reference of
// issue 12's xDS convergence benchmark (bench/xds.bench.ts). It serves the same mesh as Capstan's control
// plane does in that benchmark: a Listener `api` (an API listener whose HttpConnectionManager takes its
// routes over RDS on ADS), a RouteConfiguration splitting service `api` between the weighted clusters
// api-v1 and api-v2, both Clusters (EDS over ADS) and their ClusterLoadAssignments, one loopback endpoint
// each.
//
// Usage: go_control_plane <listen addr> <v1 host:port> <v2 host:port>
// Prints "listening <addr>" once serving. Each stdin line "weights <v1> <v2>" sets a snapshot whose
// RouteConfiguration carries the new weights (only the route version changes, so only RDS is pushed) and
// answers "pushed <route version>" on stdout. Every node shares one snapshot (a constant NodeHash, as a
// mesh's control plane groups its proxies).
package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	service    = "api"
	routeName  = "api-routes"
	meshNodeID = "mesh"
)

// meshHash maps every node to one snapshot.
type meshHash struct{}

func (meshHash) ID(*core.Node) string { return meshNodeID }

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		log.Fatal(err)
	}
	return a
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func listener() *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{
			Rds: &hcmv3.Rds{ConfigSource: adsSource(), RouteConfigName: routeName},
		},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	return &listenerv3.Listener{Name: service, ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)}}
}

func routes(w1, w2 uint32) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: routeName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    service,
			Domains: []string{service},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ""}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
						WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
							{Name: service + "-v1", Weight: wrapperspb.UInt32(w1)},
							{Name: service + "-v2", Weight: wrapperspb.UInt32(w2)},
						}},
					},
				}},
			}},
		}},
	}
}

func cluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
}

func loadAssignment(name, hostPort string) *endpointv3.ClusterLoadAssignment {
	host, portText, err := net.SplitHostPort(hostPort)
	if err != nil {
		log.Fatal(err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		log.Fatal(err)
	}
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			// gRPC drops a locality without a weight.
			Locality:            &core.Locality{},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Protocol:      core.SocketAddress_TCP,
						Address:       host,
						PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
					}}},
				}},
			}},
		}},
	}
}

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: go_control_plane <listen addr> <v1 host:port> <v2 host:port>")
	}
	ctx := context.Background()
	snapshots := cachev3.NewSnapshotCache(true, meshHash{}, nil)
	v1, v2 := service+"-v1", service+"-v2"
	// The Listener, Clusters and endpoints never change: their version stays "1", so a weight change
	// pushes the RouteConfiguration alone.
	static := cachev3.Snapshot{}
	static.Resources[types.Listener] = cachev3.NewResources("1", []types.Resource{listener()})
	static.Resources[types.Cluster] = cachev3.NewResources("1", []types.Resource{cluster(v1), cluster(v2)})
	static.Resources[types.Endpoint] = cachev3.NewResources("1", []types.Resource{
		loadAssignment(v1, os.Args[2]), loadAssignment(v2, os.Args[3]),
	})
	routeVersion := 0
	push := func(w1, w2 uint32) error {
		routeVersion++
		snap := static
		snap.Resources[types.Route] = cachev3.NewResources(strconv.Itoa(routeVersion), []types.Resource{routes(w1, w2)})
		// No snap.Consistent(): it looks for RDS names in filter chains only, not in API listeners.
		return snapshots.SetSnapshot(ctx, meshNodeID, &snap)
	}
	if err := push(100, 0); err != nil {
		log.Fatal(err)
	}

	grpcServer := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(grpcServer, serverv3.NewServer(ctx, snapshots, nil))
	lis, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(grpcServer.Serve(lis)) }()
	fmt.Printf("listening %s\n", lis.Addr())

	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 3 || fields[0] != "weights" {
			fmt.Printf("error bad command %q\n", lines.Text())
			continue
		}
		w1, err1 := strconv.ParseUint(fields[1], 10, 32)
		w2, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || w1+w2 == 0 {
			fmt.Printf("error bad weights %q\n", lines.Text())
			continue
		}
		if err := push(uint32(w1), uint32(w2)); err != nil {
			fmt.Printf("error %v\n", err)
			continue
		}
		fmt.Printf("pushed %d\n", routeVersion)
	}
	// stdin closed: the bench is done with us.
	grpcServer.Stop()
}
