/* geo.c - haversine great-circle distance. */
#include "core/base/geo.h"

#include <math.h>

static double geo_radians(double degrees)
{
    return degrees * (3.14159265358979323846 / 180.0);
}

double allot_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    double phi1 = geo_radians(lat1);
    double phi2 = geo_radians(lat2);
    double dphi = geo_radians(lat2 - lat1);
    double dlambda = geo_radians(lon2 - lon1);
    double s1 = sin(dphi / 2.0);
    double s2 = sin(dlambda / 2.0);
    double a = s1 * s1 + cos(phi1) * cos(phi2) * s2 * s2;
    if (a > 1.0)
        a = 1.0;
    return 2.0 * ALLOT_EARTH_RADIUS_KM * asin(sqrt(a));
}
