package registry

// All returns every resource skiff serves, in discovery order.
func All() []*Resource {
	return []*Resource{
		namespaces(),
		pods(),
		nodes(),
		services(),
		endpoints(),
		configmaps(),
		secrets(),
		serviceaccounts(),
		events(),
		persistentvolumes(),
		persistentvolumeclaims(),
		deployments(),
		replicasets(),
		statefulsets(),
		daemonsets(),
		controllerrevisions(),
		jobs(),
		cronjobs(),
		leases(),
		endpointslices(),
		eventsV1(),
		storageclasses(),
		podpresets(),
	}
}
