/* geo.h - great-circle distance between two points in degrees.
 *
 * Contract: haversine on a sphere of radius ALLOT_EARTH_RADIUS_KM (6371.0088 km, the IUGG mean
 * radius). Inputs are degrees (lat -90..90, lon -180..180); the result is kilometres >= 0.
 * Pure function, libc (libm) only.
 */
#ifndef ALLOT_CORE_GEO_H
#define ALLOT_CORE_GEO_H

#define ALLOT_EARTH_RADIUS_KM 6371.0088

double allot_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

#endif
